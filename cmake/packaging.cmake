# Debian package (CPack DEB): `cpack -G DEB` in a configured build directory makes
# redis-tether_<version>_<arch>.deb. scripts/test.sh (stage `package`) builds it from a
# Release build, installs it with dpkg, checks it and purges it.
#
#   /usr/bin/redis-tether                         the binary (stripped)
#   /etc/redis-tether/redis-tether.yaml           the annotated example config (a conffile)
#   /lib/systemd/system/*.service, *.socket       every unit in systemd/ at configure time
#   /usr/lib/sysusers.d/redis-tether.conf         systemd/redis-tether.sysusers, if present
#   /usr/share/doc/redis-tether/README.md
#   /usr/share/doc/redis-tether/examples/         Grafana dashboard, Prometheus alert rules
#
# Maintainer scripts live in cmake/debian/: postinst creates the `redis-tether` system
# user; nothing is enabled or started (the example config must be edited first); purge
# leaves the user (see postrm for why).
#
# The /etc and /lib destinations are absolute because the package's prefix is /usr while
# these trees are not under it; a plain `make install` writes them too.

set(TETHER_DEB_DIR "${CMAKE_CURRENT_LIST_DIR}/debian")

# Unit files: whatever systemd/ holds when CMake runs (re-globbed at build time).
file(GLOB TETHER_SYSTEMD_UNITS CONFIGURE_DEPENDS
  "${PROJECT_SOURCE_DIR}/systemd/*.service" "${PROJECT_SOURCE_DIR}/systemd/*.socket")
if(TETHER_SYSTEMD_UNITS)
  install(FILES ${TETHER_SYSTEMD_UNITS} DESTINATION /lib/systemd/system)
endif()
if(EXISTS "${PROJECT_SOURCE_DIR}/systemd/redis-tether.sysusers")
  install(FILES "${PROJECT_SOURCE_DIR}/systemd/redis-tether.sysusers"
    DESTINATION lib/sysusers.d RENAME redis-tether.conf)
endif()

install(FILES "${PROJECT_SOURCE_DIR}/config/redis-tether.yaml" DESTINATION /etc/redis-tether)
install(FILES "${PROJECT_SOURCE_DIR}/README.md"
  DESTINATION share/doc/redis-tether)
foreach(example grafana/redis-tether.json prometheus/redis-tether-alerts.yml)
  if(EXISTS "${PROJECT_SOURCE_DIR}/config/${example}")
    install(FILES "${PROJECT_SOURCE_DIR}/config/${example}"
      DESTINATION share/doc/redis-tether/examples)
  endif()
endforeach()

# dpkg treats the files listed in `conffiles` as the administrator's: an upgrade keeps
# local edits (asking when the packaged file changed too), and only purge removes them.
file(WRITE "${PROJECT_BINARY_DIR}/debian/conffiles" "/etc/redis-tether/redis-tether.yaml\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME redis-tether)
set(CPACK_PACKAGE_VENDOR redis-tether)
set(CPACK_PACKAGE_CONTACT "redis-tether maintainers <redis-tether@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Redis Sentinel sidecar proxy")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "redis-tether runs on every application host; applications talk plain Redis to
localhost while it multiplexes their commands over a few pipelined connections to
the master that Redis Sentinel names, and follows each failover without closing
client connections.")
# Shared-library dependencies from dpkg-shlibdeps; adduser for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_BINARY_DIR}/debian/conffiles"
  "${TETHER_DEB_DIR}/postinst" "${TETHER_DEB_DIR}/prerm" "${TETHER_DEB_DIR}/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# `make package_source` is not used; keep build trees out of it anyway.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")

include(CPack)
