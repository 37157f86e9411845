package events

import (
	"context"
	"fmt"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
)

// ProjectLister is the part of the Sentry client that lists projects.
type ProjectLister interface {
	ListProjects(ctx context.Context, org, cursor string) (sentry.Page[sentry.Project], error)
}

// ListProjects pages through the organisation's projects, up to max of them
// (truncated reports that there were more). A permanent Sentry answer is a
// configuration error naming what to check; anything else is transient.
func ListProjects(ctx context.Context, api ProjectLister, org string, max int) (projects []sentry.Project, truncated bool, err error) {
	seen := make(map[string]bool)
	cursor := ""
	for {
		page, err := api.ListProjects(ctx, org, cursor)
		if err != nil {
			if failure.IsConfig(err) {
				return nil, false, fmt.Errorf("%w: failed to list the projects of organization %q: check SENTRY_ORG and that the token has the org:read and project:read scopes: %w", failure.ErrConfig, org, err)
			}
			return nil, false, failure.Transient(fmt.Errorf("failed to list the projects of organization %q: %w", org, err))
		}
		for _, p := range page.Items {
			if p.ID == "" || seen[p.ID] {
				continue
			}
			if len(projects) == max {
				return projects, true, nil
			}
			seen[p.ID] = true
			projects = append(projects, p)
		}
		if !page.HasNext || page.NextCursor == "" || page.NextCursor == cursor {
			return projects, false, nil
		}
		cursor = page.NextCursor
	}
}
