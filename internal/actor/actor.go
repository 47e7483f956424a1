// Package actor carries who is acting, and from where, through a request's
// context, so every service can attribute the changes it records in the
// ledger and the events it publishes without threading a parameter through
// every call.
package actor

import "context"

// Actor is whoever caused a change: an operator through a session, an API
// token, a CLI command on the server, or the system itself.
type Actor struct {
	// Name is "operator:<username>", "token:<name>", "cli:<user>" or "system".
	Name string `json:"name"`
	// Remote is the network address the request came from, if any.
	Remote string `json:"remote,omitempty"`
}

// System is the actor for changes fleetward makes by itself.
var System = Actor{Name: "system"}

type key struct{}

// With returns a context that carries a.
func With(ctx context.Context, a Actor) context.Context { return context.WithValue(ctx, key{}, a) }

// From returns the actor in ctx, or System when there is none.
func From(ctx context.Context) Actor {
	if a, ok := ctx.Value(key{}).(Actor); ok && a.Name != "" {
		return a
	}
	return System
}
