package agent

import "golang.org/x/sys/unix"

// unameRelease is the kernel release from uname(2), for when /proc is not
// mounted.
func unameRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
