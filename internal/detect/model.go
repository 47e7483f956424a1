package detect

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/fleetward/fleetward/internal/apperr"
)

// ModelFormat and ModelVersion identify a saved KitNET. A file of another
// format or version is refused, never guessed at.
const (
	ModelFormat  = "fleetward-kitnet"
	ModelVersion = 1
	// maxModelBytes bounds a model file: 100 features make a few hundred
	// kilobytes, calibration scores included.
	maxModelBytes = 64 << 20
)

type savedAutoencoder struct {
	Visible int       `json:"visible"`
	Hidden  int       `json:"hidden"`
	LR      float64   `json:"learning_rate"`
	W       []float64 `json:"w"`
	HBias   []float64 `json:"hbias"`
	VBias   []float64 `json:"vbias"`
	Lo      []float64 `json:"lo"`
	Hi      []float64 `json:"hi"`
}

type savedModel struct {
	Format        string             `json:"format"`
	Version       int                `json:"version"`
	Features      int                `json:"features"`
	Config        KitNETConfig       `json:"config"`
	FeatureMap    [][]int            `json:"feature_map"`
	Ensemble      []savedAutoencoder `json:"ensemble"`
	Output        savedAutoencoder   `json:"output"`
	Calibration   []float64          `json:"calibration"`
	CalibrationAE []float64          `json:"calibration_ae"`
}

// Save writes the trained model as versioned JSON. Returns an Invalid
// error while the model is still in its grace periods.
func (k *KitNET) Save(w io.Writer) error {
	if k.Training() || k.output == nil {
		return apperr.InvalidField("model", "still training (%d of %d grace packets)", k.trained, k.cfg.FMGrace+k.cfg.ADGrace+1)
	}
	m := savedModel{Format: ModelFormat, Version: ModelVersion, Features: k.n, Config: k.cfg, FeatureMap: k.featMap,
		Output: saveAE(k.output), Calibration: k.calib, CalibrationAE: k.calibAE}
	for _, ae := range k.ensemble {
		m.Ensemble = append(m.Ensemble, saveAE(ae))
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

func saveAE(a *autoencoder) savedAutoencoder {
	return savedAutoencoder{Visible: a.nv, Hidden: a.nh, LR: a.lr, W: a.weights(), HBias: a.hbias, VBias: a.vbias, Lo: a.lo, Hi: a.hi}
}

// LoadKitNET reads a model written by Save; it scores from the first
// packet. Returns an Invalid error naming what is wrong with a file that
// is not such a model, of another version, or inconsistent.
func LoadKitNET(r io.Reader) (*KitNET, error) {
	var m savedModel
	dec := json.NewDecoder(io.LimitReader(r, maxModelBytes))
	if err := dec.Decode(&m); err != nil {
		return nil, apperr.InvalidField("model", "not a model file: %v", err)
	}
	switch {
	case m.Format != ModelFormat:
		return nil, apperr.InvalidField("model", "format %q, want %q", m.Format, ModelFormat)
	case m.Version != ModelVersion:
		return nil, apperr.InvalidField("model", "version %d, this fleetward reads version %d", m.Version, ModelVersion)
	case m.Features != NumFeatures:
		return nil, apperr.InvalidField("model", "%d features, want %d", m.Features, NumFeatures)
	case len(m.FeatureMap) == 0 || len(m.FeatureMap) != len(m.Ensemble):
		return nil, apperr.InvalidField("model", "%d feature groups for %d autoencoders", len(m.FeatureMap), len(m.Ensemble))
	case len(m.CalibrationAE) != 0 && len(m.CalibrationAE) != len(m.Ensemble):
		return nil, apperr.InvalidField("model", "calibration_ae has %d values for %d autoencoders", len(m.CalibrationAE), len(m.Ensemble))
	}
	cfg := m.Config.withDefaults()
	pickSigmoidLoads()
	k := &KitNET{cfg: cfg, n: m.Features, trained: cfg.FMGrace + cfg.ADGrace + 1, featMap: m.FeatureMap,
		calib: m.Calibration, calibAE: m.CalibrationAE}
	width := 0
	for i, g := range m.FeatureMap {
		if len(g) != m.Ensemble[i].Visible {
			return nil, apperr.InvalidField("model", "feature group %d has %d features, its autoencoder %d inputs", i, len(g), m.Ensemble[i].Visible)
		}
		for _, f := range g {
			if f < 0 || f >= m.Features {
				return nil, apperr.InvalidField("model", "feature group %d names feature %d of %d", i, f, m.Features)
			}
		}
		ae, err := loadAE(m.Ensemble[i], fmt.Sprintf("autoencoder %d", i))
		if err != nil {
			return nil, err
		}
		k.ensemble = append(k.ensemble, ae)
		width = max(width, len(g))
	}
	if m.Output.Visible != len(m.Ensemble) {
		return nil, apperr.InvalidField("model", "output autoencoder has %d inputs for %d autoencoders", m.Output.Visible, len(m.Ensemble))
	}
	out, err := loadAE(m.Output, "output autoencoder")
	if err != nil {
		return nil, err
	}
	k.output = out
	k.hidden = make([]float64, len(k.ensemble))
	k.scratch = make([]float64, width)
	k.shareUnits()
	return k, nil
}

func loadAE(s savedAutoencoder, name string) (*autoencoder, error) {
	nv, nh := s.Visible, s.Hidden
	if nv <= 0 || nh <= 0 || nv > NumFeatures || nh > NumFeatures {
		return nil, apperr.InvalidField("model", "%s has %d inputs and %d hidden units", name, nv, nh)
	}
	if len(s.W) != nv*nh || len(s.HBias) != nh || len(s.VBias) != nv || len(s.Lo) != nv || len(s.Hi) != nv {
		return nil, apperr.InvalidField("model", "%s: weight and bias sizes do not match %d×%d", name, nv, nh)
	}
	for _, v := range [][]float64{s.W, s.HBias, s.VBias, s.Lo, s.Hi, {s.LR}} {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, apperr.InvalidField("model", "%s holds a value that is not finite", name)
			}
		}
	}
	if !(s.LR > 0 && s.LR <= 1) {
		// Continued learning (--learn) steps by it: a negative or huge step
		// would climb the error instead of descending it.
		return nil, apperr.InvalidField("model", "%s has a learning rate of %g; want one in (0, 1]", name, s.LR)
	}
	a := newAutoencoderWeights(nv, nh, s.LR, s.W)
	a.hbias, a.vbias, a.lo, a.hi = s.HBias, s.VBias, s.Lo, s.Hi
	return a.prepare(), nil
}
