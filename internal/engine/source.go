package engine

import (
	"fmt"
	"strings"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// CheckSource validates what the constructor of every source (events,
// issues, audit log) needs before it looks at its own options: a Sentry
// client (api, nil when missing), the stores (Check), an organisation, a
// data prefix, and the stream's state (<statePrefix><stream>/) outside the
// data prefix, where the feed would ingest or delete it. Every error is a
// configuration error (failure.ErrConfig).
func (e Env) CheckSource(stream string, api any, org, dataPrefix, statePrefix string) error {
	if api == nil {
		return fmt.Errorf("%w: the %s stream needs a Sentry client", failure.ErrConfig, stream)
	}
	if err := e.Check(); err != nil {
		return err
	}
	switch {
	case org == "":
		return fmt.Errorf("%w: the organisation slug is required", failure.ErrConfig)
	case dataPrefix == "":
		return fmt.Errorf("%w: the data prefix must not be empty (the state would lie inside it)", failure.ErrConfig)
	case strings.HasPrefix(statePrefix+stream+"/", dataPrefix):
		return fmt.Errorf("%w: the state prefix %q must not lie inside the data prefix %q (the feed would ingest or delete the state)", failure.ErrConfig, statePrefix, dataPrefix)
	}
	return nil
}
