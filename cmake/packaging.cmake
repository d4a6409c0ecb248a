# The Debian package: `cpack -G DEB` in a build directory (scripts/ci-package.sh builds, installs,
# checks and removes it). Everything is installed by the normal build's install rules, so
# `cmake --install` and the .deb put the same files in the same places.
include(GNUInstallDirs)

set(billsync_packaging ${PROJECT_SOURCE_DIR}/packaging)

# systemd units, sysusers.d and tmpfiles.d entries (Debian 12: /usr/lib is /lib).
install(FILES ${billsync_packaging}/billsync.service ${billsync_packaging}/billsync@.service
        DESTINATION lib/systemd/system)
install(FILES ${billsync_packaging}/debian/billsync.sysusers
        DESTINATION lib/sysusers.d RENAME billsync.conf)
install(FILES ${billsync_packaging}/debian/billsync.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME billsync.conf)

# The configuration: conffiles (packaging/debian/conffiles), kept over upgrades when edited.
install(FILES ${billsync_packaging}/billsync.toml ${billsync_packaging}/engagements.toml
        DESTINATION /etc/billsync)

# Documentation and the man page (gzipped at build time, no downloads).
install(FILES
            ${PROJECT_SOURCE_DIR}/README.md
            ${PROJECT_SOURCE_DIR}/docs/configuration.md
            ${PROJECT_SOURCE_DIR}/docs/invoicing.md
            ${PROJECT_SOURCE_DIR}/docs/operations.md
            ${billsync_packaging}/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${billsync_packaging}/kubernetes DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/billsync.1.gz
    COMMAND gzip -9nc ${billsync_packaging}/billsync.1 > ${CMAKE_CURRENT_BINARY_DIR}/billsync.1.gz
    DEPENDS ${billsync_packaging}/billsync.1
    COMMENT "Compressing the man page")
add_custom_target(billsync_man ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/billsync.1.gz)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/billsync.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

set(CPACK_PACKAGE_NAME billsync)
set(CPACK_PACKAGE_VENDOR billsync)
set(CPACK_PACKAGE_CONTACT "billsync maintainers <billsync@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "billing sync and overdue follow-up daemon for accounting firms")
set(CPACK_PACKAGE_DESCRIPTION
    "billsync keeps an accounting firm's practice management, time and ledger systems in sync \
and runs three workflows: draft time entries, invoices from engagements, and the overdue \
follow-up by email, SMS and tasks.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers and systemd-tmpfiles run in postinst; tzdata holds the firms' time zones.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd (>= 247), tzdata, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${billsync_packaging}/debian/conffiles
    ${billsync_packaging}/debian/postinst
    ${billsync_packaging}/debian/prerm
    ${billsync_packaging}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
