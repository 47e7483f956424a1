package detect

// LiveOptions adjusts a live capture (OpenInterface). The zero value is
// what a network sensor wants.
type LiveOptions struct {
	// NoPromiscuous captures only the frames the interface accepts for
	// the host: those to its own MAC address, broadcasts and its multicast
	// groups. By default the capture asks for promiscuous mode, so that a
	// sensor on a mirror (SPAN) port or a hub sees the unicast traffic
	// between other hosts, which is the traffic it is there to watch.
	NoPromiscuous bool
}
