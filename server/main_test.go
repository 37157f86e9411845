package main

import "testing"

func TestIsLocalCommand(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		args []string
		want bool
	}{
		{name: "no_args_is_the_service", args: nil, want: false},
		{name: "serve", args: []string{"serve"}, want: false},
		{name: "collect", args: []string{"collect", "-json"}, want: true},
		{name: "backfill", args: []string{"backfill", "-start", "x"}, want: true},
		{name: "demo", args: []string{"demo"}, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isLocalCommand(tc.args); got != tc.want {
				t.Errorf("isLocalCommand(%q) = %v, want %v", tc.args, got, tc.want)
			}
		})
	}
}
