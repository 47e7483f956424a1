package app

import (
	"context"
	"net/http"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// ScoreReport is what recording a batch of score summaries did.
type ScoreReport struct {
	// Accepted is the number of summaries received.
	Accepted int `json:"accepted"`
	// Devices is the number of inventory devices that got measurements.
	Devices int `json:"devices"`
	// Samples is the number of measurements stored.
	Samples int `json:"samples"`
	// Unresolved counts summaries whose source is no inventory device:
	// they are not stored (an unknown host's score has no page to go on).
	Unresolved int `json:"unresolved"`
}

// recordScores stores score summaries as measurements of the devices
// their sources resolve to, with the resolver the alerts use. Summaries
// resolving to one device at one end time are merged, since a
// measurement is keyed by device, metric and time. The summaries must be
// valid.
func recordScores(ctx context.Context, a *alerts, tel *telemetry.Store, sums []alert.ScoreSummary) (ScoreReport, error) {
	rep := ScoreReport{Accepted: len(sums)}
	type key struct {
		device string
		end    time.Time
	}
	merged := map[key]alert.ScoreSummary{}
	var order []key
	devices := map[string]bool{}
	for _, s := range sums {
		id := a.resolve(s.SrcIP, s.SrcMAC)
		if id == "" {
			rep.Unresolved++
			continue
		}
		k := key{id, s.End.UTC()}
		if m, ok := merged[k]; ok {
			merged[k] = m.Merge(s)
			continue
		}
		merged[k] = s
		order = append(order, k)
		devices[id] = true
	}
	var samples []telemetry.Sample
	for _, k := range order {
		samples = append(samples, telemetry.ScoreSamples(k.device, merged[k])...)
	}
	if err := tel.Record(ctx, samples); err != nil {
		return ScoreReport{}, err
	}
	rep.Devices, rep.Samples = len(devices), len(samples)
	return rep, nil
}

// RecordScores stores the score summaries of an in-process detector as
// measurements of the devices their sources resolve to. Returns Invalid
// naming the index and field of the first bad summary; nothing is stored
// then.
func (s *Server) RecordScores(ctx context.Context, sums []alert.ScoreSummary) (ScoreReport, error) {
	if err := alert.ValidateItems("summaries", sums); err != nil {
		return ScoreReport{}, err
	}
	return recordScores(ctx, s.alerts, s.Telemetry, sums)
}

func registerScoreAPI(s *api.Server, a *alerts, tel *telemetry.Store) {
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/scores", Perm: auth.PermWrite, BodyLimit: 4 << 20,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req alert.ScoreReport
			if err := api.DecodeJSON(r, &req); err != nil {
				return err
			}
			if len(req.Summaries) == 0 || len(req.Summaries) > alert.MaxReportSummaries {
				return apperr.InvalidField("summaries", "1 to %d summaries per request", alert.MaxReportSummaries)
			}
			if err := alert.ValidateItems("summaries", req.Summaries); err != nil {
				return err
			}
			rep, err := recordScores(r.Context(), a, tel, req.Summaries)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, rep)
			return nil
		}})
}
