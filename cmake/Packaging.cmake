# The Debian package (cpack -G DEB in the build directory): library, headers, CMake and
# pkg-config files, phc, engine_conf templates, docs (and man pages when there are any),
# installed under /usr. Run-time dependencies come from dpkg-shlibdeps (dpkg-dev), so they
# match the libraries the build actually linked; libcurl, loaded at run time, is named below.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME phconnect)
set(CPACK_PACKAGE_VENDOR phconnect)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Powerhub API connector with an HSM-held client key and pinned trust")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "phconnect maintainers <phconnect@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# The summary above is the synopsis line; this is the extended description under it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "A C library (libphconnect) and the phc command for \
mutually authenticated HTTPS to the Tesla Powerhub API: the client key stays on a PKCS#11 \
token, only the pinned vendor CA is trusted and connections go only to the pinned addresses.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libcurl is dlopen'd (lib/curl_load.c), so dpkg-shlibdeps cannot see it: named here, and the
# computed dependencies are appended. 7.88: the headers the library is built and tested with.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcurl4 (>= 7.88)")
# A shlibs file for packages built against libphconnect.so.0; also makes CPack add the
# ldconfig calls to postinst/postrm.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# A PKCS#11 module is needed at run time but any will do (a vendor HSM's, or SoftHSM);
# engine_conf/ is for the stock openssl/curl through the libp11 engine.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libengine-pkcs11-openssl")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "softhsm2, opensc")
include(CPack)
