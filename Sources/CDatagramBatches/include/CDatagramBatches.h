#ifndef AESEL_CDATAGRAMBATCHES_H
#define AESEL_CDATAGRAMBATCHES_H

#include <stdint.h>
#include <sys/socket.h>

/// One datagram of a batch to send: where it goes and what it carries.
typedef struct {
    const struct sockaddr *address;
    socklen_t addressLength;
    const void *payload;
    size_t payloadLength;
} aesel_datagram;

/// Sends `count` datagrams on `descriptor` with one sendmmsg(2) (at most 1024), without blocking.
/// Returns how many the kernel took, or -1 with errno set when it took none.
int aesel_send_datagrams(int descriptor, const aesel_datagram *datagrams, unsigned int count);

/// One slot of a batch to receive into: the caller sets `buffer` and `capacity`; a receive sets the rest.
typedef struct {
    void *buffer;
    size_t capacity;
    /// The datagram's length (its first `capacity` bytes are in `buffer`).
    size_t length;
    struct sockaddr_storage source;
    /// When the kernel took the datagram in (CLOCK_REALTIME, nanoseconds), with receive timestamps
    /// enabled; 0 otherwise.
    int64_t arrival;
} aesel_received_datagram;

/// Asks the kernel to stamp each datagram's arrival on `descriptor` (SO_TIMESTAMPNS). Returns 0 or -1.
int aesel_enable_arrival_timestamps(int descriptor);

/// Receives up to `count` datagrams (at most 1024) on `descriptor` with one recvmmsg(2): without
/// blocking when `wait` is 0, else blocking until one arrives and then taking what else waits
/// (MSG_WAITFORONE). Returns how many it received, or -1 with errno set (EAGAIN: none waiting).
int aesel_receive_datagrams(int descriptor, aesel_received_datagram *datagrams, unsigned int count, int wait);

#endif
