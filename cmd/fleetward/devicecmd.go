package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
)

// clientFlags reach a running server's API.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Value: "https://127.0.0.1:8443", Usage: "fleetward server URL", Sources: cli.EnvVars("FLEETWARD_SERVER")},
		&cli.StringFlag{Name: "token", Usage: "API token (see 'fleetward token create')", Sources: cli.EnvVars("FLEETWARD_TOKEN")},
		&cli.StringFlag{Name: "cacert", Usage: "PEM file to trust for the server (e.g. DATA/tls/ca.crt)", Sources: cli.EnvVars("FLEETWARD_CACERT")},
	}
}

func deviceCommand() *cli.Command {
	filters := []string{"class", "vendor", "site", "tag", "status", "group", "risk_min", "risk_max", "q", "sort"}
	flags := clientFlags()
	for _, f := range filters {
		flags = append(flags, &cli.StringFlag{Name: strings.ReplaceAll(f, "_", "-"), Usage: "filter: " + f + " (as the API's ?" + f + "=)"})
	}
	flags = append(flags,
		&cli.IntFlag{Name: "limit", Value: 0, Usage: "stop after this many devices (0: all)"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON lines, one device per line"},
	)
	return &cli.Command{
		Name:  "device",
		Usage: "query the inventory of a running server through its API",
		Commands: []*cli.Command{{
			Name:  "list",
			Usage: "list devices with the API's filters, following every page",
			Flags: flags,
			Action: func(ctx context.Context, cmd *cli.Command) error {
				c, err := newAPIClient(cmd)
				if err != nil {
					return err
				}
				q := url.Values{}
				for _, f := range filters {
					if v := cmd.String(strings.ReplaceAll(f, "_", "-")); v != "" {
						q.Set(f, v)
					}
				}
				q.Set("limit", "500")
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				if !cmd.Bool("json") {
					fmt.Fprintln(tw, "ID\tNAME\tCLASS\tVENDOR\tMODEL\tFIRMWARE\tSITE\tSTATUS\tRISK")
				}
				n, max := 0, cmd.Int("limit")
				for {
					var page struct {
						Devices    []map[string]any `json:"devices"`
						NextCursor string           `json:"next_cursor"`
					}
					if err := c.get(ctx, "/api/v1/devices?"+q.Encode(), &page); err != nil {
						return err
					}
					for _, d := range page.Devices {
						if max > 0 && n >= max {
							return tw.Flush()
						}
						n++
						if cmd.Bool("json") {
							_ = json.NewEncoder(os.Stdout).Encode(d)
							continue
						}
						loc, _ := d["location"].(map[string]any)
						fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\t%.0f\n", d["id"], d["name"], d["class"], d["vendor"], d["model"],
							d["firmware_version"], loc["site"], d["status"], d["risk_score"])
					}
					if page.NextCursor == "" {
						return tw.Flush()
					}
					q.Set("cursor", page.NextCursor)
				}
			},
		}},
	}
}

type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(cmd *cli.Command) (*apiClient, error) {
	if cmd.String("token") == "" {
		return nil, fmt.Errorf("--token (or FLEETWARD_TOKEN) is required")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f := cmd.String("cacert"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", f)
		}
		tc.RootCAs = pool
	}
	return &apiClient{
		base: strings.TrimRight(cmd.String("server"), "/"), token: cmd.String("token"),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}},
	}, nil
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, "GET", path, nil, out)
}

// do sends a request with an optional JSON body and decodes the JSON
// answer into out; an error answer becomes an error with its code, field
// and message.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			if e.Error.Field != "" {
				return fmt.Errorf("%s: %s: %s", e.Error.Code, e.Error.Field, e.Error.Message)
			}
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
