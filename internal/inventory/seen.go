package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetward/fleetward/internal/store"
)

// MarkSeen records that devices were seen (connected or reporting) at the
// given times: last_seen moves forward, never back, and first_seen is set
// if it was never set. Unknown ids are ignored.
//
// Unlike every other change it is not a ledger entry and does not bump the
// device's version: being seen is an observation made many times an hour
// for every connected device, not a change anyone made, and recording it
// would bury the ledger's real changes. The events that matter (connects
// refused, certificates issued and revoked) are recorded where they happen.
func (s *Service) MarkSeen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for id, at := range seen {
			n := store.Nanos(at.UTC().Truncate(time.Microsecond))
			if _, err := tx.Exec(ctx, `UPDATE devices SET last_seen = ?, first_seen = CASE WHEN first_seen = 0 THEN ? ELSE first_seen END
				WHERE id = ? AND last_seen < ?`, n, n, id, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %d devices seen: %w", len(seen), err)
	}
	return nil
}
