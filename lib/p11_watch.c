#include "p11_watch.h"

#include "p11_module.h"

#include <stdio.h>
#include <string.h>

static __thread phc_p11_watch *t_watch;

void phc__p11_watch_init(phc_p11_watch *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
}

void phc__p11_watch_destroy(phc_p11_watch *w)
{
    pthread_mutex_destroy(&w->mu);
}

void phc__p11_watch_bind(phc_p11_watch *w)
{
    t_watch = w;
}

void phc__p11_watch_enter(const char *call)
{
    phc_p11_watch *w = t_watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->call = call;
    w->last = call;
    w->since = phc__p11_mono_ms();
    pthread_mutex_unlock(&w->mu);
}

CK_RV phc__p11_watch_leave(CK_RV rv)
{
    phc_p11_watch *w = t_watch;
    if (w) {
        pthread_mutex_lock(&w->mu);
        w->call = NULL;
        pthread_mutex_unlock(&w->mu);
    }
    return rv;
}

void phc__p11_watch_token(const char *label)
{
    phc_p11_watch *w = t_watch;
    if (!w || !label || !*label)
        return;
    pthread_mutex_lock(&w->mu);
    snprintf(w->token, sizeof(w->token), "%s", label);
    pthread_mutex_unlock(&w->mu);
}

long phc__p11_watch_left(phc_p11_watch *w, long bound_ms, const char **call, const char **last,
                         char *token, size_t len)
{
    pthread_mutex_lock(&w->mu);
    long left = bound_ms;
    if (w->call)
        left = (long)(w->since + bound_ms - phc__p11_mono_ms());
    *call = w->call;
    *last = w->last;
    snprintf(token, len, "%s", w->token);
    pthread_mutex_unlock(&w->mu);
    return left;
}
