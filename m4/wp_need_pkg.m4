# WP_NEED_PKG(VARIABLE-PREFIX, MODULES, DEBIAN-PACKAGE)
# ----------------------------------------------------
# PKG_CHECK_MODULES that stops configure with the Debian package to install.
AC_DEFUN([WP_NEED_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found: install the Debian package $3 (apt-get install $3)])])
])
