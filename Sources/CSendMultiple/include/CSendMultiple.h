#ifndef AESEL_CSENDMULTIPLE_H
#define AESEL_CSENDMULTIPLE_H

#include <sys/socket.h>

/// One datagram of a batch: where it goes and what it carries.
typedef struct {
    const struct sockaddr *address;
    socklen_t addressLength;
    const void *payload;
    size_t payloadLength;
} aesel_datagram;

/// Sends `count` datagrams on `descriptor` with one sendmmsg(2) (at most 1024), without blocking.
/// Returns how many the kernel took, or -1 with errno set when it took none.
int aesel_send_datagrams(int descriptor, const aesel_datagram *datagrams, unsigned int count);

#endif
