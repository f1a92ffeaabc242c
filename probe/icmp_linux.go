//go:build linux

package probe

// icmpPermissionHint says how to let catchmap open an ICMP socket. Linux
// grants unprivileged ping sockets only to the groups in a sysctl range,
// which many distributions leave empty ("1 0").
const icmpPermissionHint = `unprivileged ICMP needs the process's group in net.ipv4.ping_group_range ` +
	`(sysctl -w net.ipv4.ping_group_range="0 2147483647"); or use --privileged as root or with CAP_NET_RAW`
