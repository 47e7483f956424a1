package api

import (
	"encoding/base64"
	"net/http"

	"github.com/fleetward/fleetward/internal/apperr"
)

func (s *Server) ledgerCheckpoint(w http.ResponseWriter, r *http.Request) error {
	cp, err := s.deps.Ledger.Latest(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root), "time": cp.Time,
		"note": string(cp.Note), "verifier_key": s.deps.Ledger.VerifierKey(),
	})
	return nil
}

func (s *Server) ledgerEntries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err := uintParam(q, "from")
	if err != nil {
		return err
	}
	to, err := uintParam(q, "to")
	if err != nil {
		return err
	}
	if to <= from {
		return apperr.InvalidField("to", "must be greater than from")
	}
	if to-from > 1000 {
		return apperr.InvalidField("to", "at most 1000 entries per request")
	}
	entries, err := s.deps.Ledger.Entries(r.Context(), from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
	return nil
}

func (s *Server) inclusionProof(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	index, err := uintParam(q, "index")
	if err != nil {
		return err
	}
	size, err := uintParam(q, "size")
	if err != nil {
		return err
	}
	proof, err := s.deps.Ledger.InclusionProof(r.Context(), index, size)
	if err != nil {
		return err
	}
	entries, err := s.deps.Ledger.Entries(r.Context(), index, index+1)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": index, "size": size, "proof": proof, "entry": first(entries)})
	return nil
}

func (s *Server) consistencyProof(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size1, err := uintParam(q, "from")
	if err != nil {
		return err
	}
	size2, err := uintParam(q, "to")
	if err != nil {
		return err
	}
	proof, err := s.deps.Ledger.ConsistencyProof(r.Context(), size1, size2)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": size1, "to": size2, "proof": proof})
	return nil
}

func first[T any](xs []T) any {
	if len(xs) == 0 {
		return nil
	}
	return xs[0]
}
