#define _GNU_SOURCE
#include "CSendMultiple.h"
#include <string.h>
#include <sys/uio.h>

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
