package graphgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestFile is the name of the manifest in a data directory written by
// `linkgraph generate`.
const ManifestFile = "generate.json"

// Manifest says what a generated data directory holds, so that benchmarks
// know what to query.
type Manifest struct {
	Seed            uint64 `json:"seed"`
	Edges           int64  `json:"edges"`
	Pages           int    `json:"pages"`
	Fetches         int    `json:"fetches"`
	HubURL          string `json:"hub_url,omitempty"`
	HubBacklinks    int64  `json:"hub_backlinks"`
	HubDomain       string `json:"hub_domain,omitempty"`
	DomainBacklinks int64  `json:"domain_backlinks"`
	// SampleTargets are URLs with live backlinks (see Web.SampleTargets).
	SampleTargets []string `json:"sample_targets"`
}

// NewManifest describes w, with up to samples sample targets.
func NewManifest(w *Web, samples int) (*Manifest, error) {
	s, err := w.SampleTargets(samples)
	if err != nil {
		return nil, err
	}
	return &Manifest{
		Seed: w.cfg.Seed, Edges: w.cfg.Edges, Pages: w.Pages(), Fetches: w.Fetches(),
		HubURL: w.hubURL, HubBacklinks: w.cfg.HubBacklinks,
		HubDomain: w.HubDomain(), DomainBacklinks: w.cfg.DomainBacklinks,
		SampleTargets: s,
	}, nil
}

// WriteFile writes m into dir as ManifestFile.
func (m *Manifest) WriteFile(dir string) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("graphgen: cannot write the manifest: %w", err)
	}
	return nil
}

// ReadManifest reads the manifest of a generated data directory.
func ReadManifest(dir string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("graphgen: cannot read the manifest (was %s made by linkgraph generate?): %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("graphgen: corrupt manifest in %s: %w", dir, err)
	}
	return &m, nil
}
