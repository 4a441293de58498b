/* lib/names.c: how a PKCS#11 key is named in messages (label, id, both), and an id too long
 * for its room is cut visibly. */
#include "names.h"
#include "testutil.h"

int main(void)
{
    char out[128];
    const unsigned char id[] = {0x01, 0xab};
    phc__key_name(out, sizeof(out), "", "client", id, sizeof(id), 1);
    CHECK(strcmp(out, "'client' (id 01ab)") == 0);
    phc__key_name(out, sizeof(out), "label ", "client", id, sizeof(id), 1);
    CHECK(strcmp(out, "label 'client' (id 01ab)") == 0);
    phc__key_name(out, sizeof(out), "label ", "client", id, sizeof(id), 0);
    CHECK(strcmp(out, "label 'client'") == 0);
    phc__key_name(out, sizeof(out), "label ", NULL, id, sizeof(id), 1);
    CHECK(strcmp(out, "id 01ab") == 0);
    /* a 64-byte id: more than the 35 bytes shown, so it ends in "..." */
    unsigned char long_id[64];
    memset(long_id, 0xee, sizeof(long_id));
    phc__key_name(out, sizeof(out), "", NULL, long_id, sizeof(long_id), 1);
    CHECK(strncmp(out, "id eeee", 7) == 0 && strcmp(out + strlen(out) - 3, "...") == 0);
    CHECK(strlen(out) == 3 + 71);
    /* a short output buffer is cut, not overrun */
    char small[8];
    phc__key_name(small, sizeof(small), "", "a-long-label", id, sizeof(id), 1);
    CHECK(strlen(small) == 7);
    TEST_MAIN_END();
}
