package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// encodeConfig is how a Config is stored: JSON, env values included.
func encodeConfig(c Config) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		// Config holds no type json cannot encode; say no more than that,
		// since the error text could quote a value.
		return "", errors.New("encode config: not representable as JSON")
	}
	return string(b), nil
}

// decodeConfig reads a stored Config. Its errors never quote the stored text:
// it holds env values.
func decodeConfig(s string) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Config{}, fmt.Errorf("decode config: invalid JSON at offset %d", syn.Offset)
		case errors.As(err, &typ):
			return Config{}, fmt.Errorf("decode config: field %q is not a %s", typ.Field, typ.Type)
		default:
			return Config{}, errors.New("decode config: invalid JSON")
		}
	}
	return c, nil
}

// encodePolicy is how a Policy is stored: JSON.
func encodePolicy(p Policy) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	return string(b), nil
}

func decodePolicy(s string) (Policy, error) {
	var p Policy
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Policy{}, fmt.Errorf("decode policy: %w", err)
	}
	return p, nil
}
