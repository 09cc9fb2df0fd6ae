#include <libnbd.h>
/* GnuTLS, which libnbd links already: the NBD target verifies a TLS server's certificate over a unix socket with
 * it, since libnbd does not (UnixSocketPeerCheck.swift). */
#include <gnutls/gnutls.h>
