option(PHC_TSAN "Build with ThreadSanitizer (for the concurrency tests)" OFF)

# libFuzzer targets: every object gets coverage instrumentation (fuzzer-no-link) so the
# fuzzers see into the library; only the fuzz executables link libFuzzer itself
# (tests/fuzz/CMakeLists.txt). ASan and UBSan come along: a fuzzer without them finds little
# beyond crashes, and the tests then know they run sanitized (no valgrind).
if(PHC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PHC_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
  endif()
  set(PHC_SANITIZE ON)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(PHC_SANITIZE AND PHC_TSAN)
  message(FATAL_ERROR "PHC_TSAN cannot be combined with PHC_SANITIZE or PHC_FUZZ: "
    "ThreadSanitizer and AddressSanitizer exclude each other")
endif()

if(PHC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(PHC_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
