package inventory

import (
	"context"
	"fmt"
	"math"

	"github.com/fleetward/fleetward/internal/store"
)

// SetRiskScores stores each device's risk score (0-100). Unknown ids are
// ignored.
//
// Like MarkSeen it is not a ledger entry and does not bump the version:
// the score is derived from findings, and every finding that changes it is
// recorded in the ledger by the audit.
func (s *Service) SetRiskScores(ctx context.Context, scores map[string]float64) error {
	if len(scores) == 0 {
		return nil
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for id, v := range scores {
			if math.IsNaN(v) || v < 0 || v > 100 {
				return fmt.Errorf("risk score %v of %s is outside 0-100", v, id)
			}
			if _, err := tx.Exec(ctx, `UPDATE devices SET risk_score = ? WHERE id = ? AND risk_score <> ?`, v, id, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set risk scores of %d devices: %w", len(scores), err)
	}
	return nil
}
