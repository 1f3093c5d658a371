#define _GNU_SOURCE
#include "CDatagramBatches.h"
#include <string.h>
#include <sys/uio.h>
#include <time.h>

int aesel_send_datagrams(int descriptor, const aesel_datagram *datagrams, unsigned int count) {
    if (count > 1024) count = 1024;
    struct mmsghdr headers[count];
    struct iovec vectors[count];
    memset(headers, 0, sizeof(struct mmsghdr) * count);
    for (unsigned int index = 0; index < count; index++) {
        vectors[index].iov_base = (void *)datagrams[index].payload;
        vectors[index].iov_len = datagrams[index].payloadLength;
        headers[index].msg_hdr.msg_name = (void *)datagrams[index].address;
        headers[index].msg_hdr.msg_namelen = datagrams[index].addressLength;
        headers[index].msg_hdr.msg_iov = &vectors[index];
        headers[index].msg_hdr.msg_iovlen = 1;
    }
    return sendmmsg(descriptor, headers, count, MSG_DONTWAIT);
}

int aesel_enable_arrival_timestamps(int descriptor) {
    int on = 1;
    return setsockopt(descriptor, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
}

int aesel_receive_datagrams(int descriptor, aesel_received_datagram *datagrams, unsigned int count, int wait) {
    if (count > 1024) count = 1024;
    enum { controlSize = CMSG_SPACE(sizeof(struct timespec)) };
    struct mmsghdr headers[count];
    struct iovec vectors[count];
    // A union keeps each control buffer aligned as cmsghdr needs.
    union {
        char bytes[controlSize];
        struct cmsghdr align;
    } controls[count];
    memset(headers, 0, sizeof(struct mmsghdr) * count);
    for (unsigned int index = 0; index < count; index++) {
        vectors[index].iov_base = datagrams[index].buffer;
        vectors[index].iov_len = datagrams[index].capacity;
        headers[index].msg_hdr.msg_name = &datagrams[index].source;
        headers[index].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        headers[index].msg_hdr.msg_iov = &vectors[index];
        headers[index].msg_hdr.msg_iovlen = 1;
        headers[index].msg_hdr.msg_control = controls[index].bytes;
        headers[index].msg_hdr.msg_controllen = controlSize;
    }
    int received = recvmmsg(descriptor, headers, count, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    for (int index = 0; index < received; index++) {
        datagrams[index].length = headers[index].msg_len;
        datagrams[index].arrival = 0;
        for (struct cmsghdr *message = CMSG_FIRSTHDR(&headers[index].msg_hdr); message != NULL;
             message = CMSG_NXTHDR(&headers[index].msg_hdr, message)) {
            if (message->cmsg_level == SOL_SOCKET && message->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec stamp;
                memcpy(&stamp, CMSG_DATA(message), sizeof(stamp));
                datagrams[index].arrival = (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
            }
        }
    }
    return received;
}
