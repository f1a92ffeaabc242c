//go:build !linux

package probe

// icmpPermissionHint says how to let catchmap open an ICMP socket. Outside
// Linux, unprivileged ping sockets exist on macOS only; elsewhere a raw
// socket, and so administrator rights, is needed.
const icmpPermissionHint = `use --privileged and run as root or administrator`
