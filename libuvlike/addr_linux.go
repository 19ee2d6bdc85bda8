package libuvlike

import (
	"errors"
	"net"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// sockAddr is a resolved address in the forms both sides need: the
// net.Addr package net would report, and the sockaddr for the kernel.
type sockAddr struct {
	addr   net.Addr
	sa     unix.Sockaddr
	family int
	bind   int // Bind flags for a listener: BindIPv6Only on tcp6
}

// resolve resolves address on network for listening (listen true) or
// dialing, choosing the address family as package net does: tcp4 and tcp6
// are what they say (tcp6 with IPV6_V6ONLY); tcp takes the family of the
// address, and a wildcard listener is an IPv6 socket that also accepts
// IPv4 where the host has IPv6.
func resolve(network, address string, listen bool) (sockAddr, error) {
	if network == "unix" {
		ua, err := net.ResolveUnixAddr(network, address)
		if err != nil {
			return sockAddr{}, err
		}
		if ua.Name == "" {
			return sockAddr{}, &net.AddrError{Err: "missing unix socket path", Addr: address}
		}
		return sockAddr{addr: ua, sa: &unix.SockaddrUnix{Name: ua.Name}, family: unix.AF_UNIX}, nil
	}
	ta, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return sockAddr{}, err
	}
	ip4 := ta.IP.To4()
	wildcard := ta.IP == nil || ta.IP.IsUnspecified()
	family := unix.AF_INET6
	switch {
	case network == "tcp4":
		if ta.IP != nil && ip4 == nil {
			return sockAddr{}, &net.AddrError{Err: "non-IPv4 address", Addr: address}
		}
		family = unix.AF_INET
	case network == "tcp6":
		if ip4 != nil && !ta.IP.Equal(net.IPv4zero) {
			return sockAddr{}, &net.AddrError{Err: "non-IPv6 address", Addr: address}
		}
	case wildcard && listen:
		if !hasIPv6() {
			family = unix.AF_INET
		}
	case ta.IP == nil || ip4 != nil:
		family = unix.AF_INET
	}
	r := sockAddr{addr: ta, family: family}
	if family == unix.AF_INET {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		if ip4 != nil {
			copy(sa.Addr[:], ip4)
		} else if !listen {
			copy(sa.Addr[:], net.IPv4(127, 0, 0, 1).To4()) // dialing no host: the local system
		}
		r.sa = sa
		return r, nil
	}
	sa := &unix.SockaddrInet6{Port: ta.Port}
	switch {
	case wildcard && !listen:
		copy(sa.Addr[:], net.IPv6loopback)
	case !wildcard:
		copy(sa.Addr[:], ta.IP.To16())
	}
	if ta.Zone != "" {
		sa.ZoneId = zoneIndex(ta.Zone)
	}
	if network == "tcp6" {
		r.bind = BindIPv6Only
	}
	r.sa = sa
	return r, nil
}

// abstractUnix reports whether a unix socket address names no file but a
// name in Linux's abstract namespace: it begins with '@' (as package net
// writes it, and unix.Bind and unix.Connect take it) or a NUL. Such a
// name has no file to remove.
func abstractUnix(name string) bool {
	return name != "" && (name[0] == '@' || name[0] == 0)
}

// zoneIndex returns the interface index an IPv6 zone names.
func zoneIndex(zone string) uint32 {
	if n, err := strconv.Atoi(zone); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// hasIPv6 reports whether the host can make IPv6 sockets.
var hasIPv6 = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// netAddr returns sa as package net reports it for network ("tcp..." or
// "unix").
func netAddr(network string, sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.Itoa(int(sa.ZoneId))
			}
		}
		return a
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	if network == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return nil
}

// listenBacklog is the backlog of listening sockets: the kernel's
// somaxconn, as Go uses.
var listenBacklog = sync.OnceValue(func() int {
	b, err := readSysctl("/proc/sys/net/core/somaxconn")
	if err != nil || b <= 0 {
		return unix.SOMAXCONN
	}
	return min(b, 1<<16-1)
})

func readSysctl(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, err
	}
	i := 0
	for i < n && buf[i] >= '0' && buf[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("not a number")
	}
	return strconv.Atoi(string(buf[:i]))
}
