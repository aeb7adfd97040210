// SO_ORIGINAL_DST of a REDIRECTed IPv4 connection (what ztunnel reads on 15001/15006/15008
// with capture): the kernel writes a sockaddr_in; IPv6Mreq is a 20-byte buffer that holds it.
package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
)

const soOriginalDst = 80

func originalDst(c net.Conn) (netip.AddrPort, error) {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var mreq *syscall.IPv6Mreq
	var serr error
	if err := raw.Control(func(fd uintptr) {
		mreq, serr = syscall.GetsockoptIPv6Mreq(int(fd), syscall.IPPROTO_IP, soOriginalDst)
	}); err != nil {
		return netip.AddrPort{}, err
	}
	if serr != nil {
		return netip.AddrPort{}, serr
	}
	b := mreq.Multiaddr
	port := binary.BigEndian.Uint16(b[2:4])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), port), nil
}
