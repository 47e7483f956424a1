//go:build !linux

package agent

// unameRelease is empty where there is no Linux uname(2); the agent targets
// Linux devices.
func unameRelease() string { return "" }
