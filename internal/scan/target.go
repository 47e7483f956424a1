package scan

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// MaxAddresses is the largest number of addresses one scan may cover; a
// larger target list is refused rather than silently cut.
const MaxAddresses = 65536

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ParseTargets expands target specifications into a sorted list of distinct
// addresses. A specification is a CIDR prefix ("192.168.1.0/24"), an
// address, a host name (resolved with r, or net.DefaultResolver if r is
// nil) or a comma-separated list of those. Returns an Invalid error naming
// the bad target, or when the targets cover more than MaxAddresses
// addresses. It does not check scope: see CheckScope.
func ParseTargets(ctx context.Context, specs []string, r Resolver) ([]netip.Addr, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) error {
		a = a.Unmap()
		if seen[a] {
			return nil
		}
		if len(out) >= MaxAddresses {
			return apperr.InvalidField("targets", "more than %d addresses; split the scan", MaxAddresses)
		}
		seen[a] = true
		out = append(out, a)
		return nil
	}
	for _, spec := range specs {
		for _, t := range strings.Split(spec, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			addrs, err := expandTarget(ctx, t, r)
			if err != nil {
				return nil, err
			}
			for _, a := range addrs {
				if err := add(a); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, apperr.InvalidField("targets", "no target given")
	}
	sortAddrs(out)
	return out, nil
}

func expandTarget(ctx context.Context, t string, r Resolver) ([]netip.Addr, error) {
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return nil, apperr.InvalidField("targets", "%q is not a CIDR prefix: %v", t, err)
		}
		p = p.Masked()
		if hostBits := p.Addr().BitLen() - p.Bits(); hostBits > 16 {
			return nil, apperr.InvalidField("targets", "%s covers more than %d addresses; split the scan", p, MaxAddresses)
		}
		var out []netip.Addr
		for a := p.Addr(); a.IsValid() && p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
		return out, nil
	}
	if a, err := netip.ParseAddr(t); err == nil {
		if a.Zone() != "" {
			return nil, apperr.InvalidField("targets", "%q: zoned addresses are not supported", t)
		}
		return []netip.Addr{a}, nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", t)
	if err != nil {
		return nil, apperr.InvalidField("targets", "%q: cannot resolve: %v", t, err)
	}
	if len(addrs) == 0 {
		return nil, apperr.InvalidField("targets", "%q: resolves to no address", t)
	}
	return addrs, nil
}

// InScope reports whether a may be scanned: it is private (RFC 1918,
// RFC 4193 fc00::/7), loopback, link-local, or inside one of allowed.
func InScope(a netip.Addr, allowed []netip.Prefix) bool {
	a = a.Unmap()
	if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckScope returns a Forbidden error naming the first address that is not
// InScope, or nil. Scan calls it before it sends anything.
func CheckScope(addrs []netip.Addr, allowed []netip.Prefix) error {
	for _, a := range addrs {
		if !InScope(a, allowed) {
			return &apperr.Error{Code: apperr.Forbidden, Field: "targets",
				Message: "address " + a.String() + " is outside the scan scope (private, loopback and link-local ranges); add an --allow range that covers it if you are authorised to scan it"}
		}
	}
	return nil
}
