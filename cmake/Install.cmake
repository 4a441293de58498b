# Install rules and packaging. `cmake --install build --prefix P` gives a package that works
# where it lands: the .pc file and the CMake package find P by their own location, and the
# installed phc finds the installed library without LD_LIBRARY_PATH. CPack makes the Debian
# package from the same rules (cmake/Packaging.cmake).
include(CMakePackageConfigHelpers)

set(PHC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/phconnect)

# phc looks for libphconnect relative to itself ($ORIGIN), so any prefix works.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PHC_RPATH "${CMAKE_INSTALL_LIBDIR}")
else()
  set(PHC_RPATH "\$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endif()
set_target_properties(phc PROPERTIES INSTALL_RPATH "${PHC_RPATH}")

install(TARGETS phconnect EXPORT phconnectTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY lib/include/phconnect DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PHC_GENERATED_INCLUDE}/phconnect/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/phconnect)

# find_package(phconnect 0.2 CONFIG): the imported target phconnect::phconnect. The shared
# library links OpenSSL, libp11, p11-kit and jansson privately (and loads libcurl at run
# time: lib/curl_load.c) and the public headers
# include only standard headers, so a consumer needs none of them: the Config file has no
# find_dependency.
install(EXPORT phconnectTargets NAMESPACE phconnect:: FILE phconnectTargets.cmake
  DESTINATION ${PHC_CMAKE_DIR})
configure_package_config_file(cmake/phconnectConfig.cmake.in
  ${PROJECT_BINARY_DIR}/phconnectConfig.cmake INSTALL_DESTINATION ${PHC_CMAKE_DIR})
# Before 1.0 a minor release may change the API, so 0.2 accepts 0.2.x only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/phconnectConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/phconnectConfig.cmake
  ${PROJECT_BINARY_DIR}/phconnectConfigVersion.cmake DESTINATION ${PHC_CMAKE_DIR})

# pkg-config: the prefix is derived from where the .pc file is (${pcfiledir}), not frozen at
# configure time, so `cmake --install --prefix P` and the .deb (prefix /usr) both work.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PHC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH PHC_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" PHC_PC_UP "${PHC_PC_UP}")
  set(PHC_PC_PREFIX "\${pcfiledir}/${PHC_PC_UP}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(PHC_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(PHC_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(cmake/phconnect.pc.in ${PROJECT_BINARY_DIR}/phconnect.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/phconnect.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(DIRECTORY engine_conf/ DESTINATION ${CMAKE_INSTALL_DATADIR}/phconnect/engine_conf)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# (docs/man holds no .md: left out, or it would leave an empty directory in the doc dir.)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md"
  PATTERN man EXCLUDE)

# Man pages: phc(1), phconnect.cnf(5), phconnect(3). Hand-written mdoc installed as they are,
# not generated from scdoc/pandoc sources: no generator in the build, and mandoc's linter
# checks mdoc's semantics (tests/man_sync.sh runs it and checks that the pages cover every
# subcommand, flag, config key and exported symbol).
file(GLOB PHC_MAN_PAGES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.[1-9])
foreach(page ${PHC_MAN_PAGES})
  string(REGEX REPLACE ".*\\.([1-9])$" "\\1" section "${page}")
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

include(Packaging)
