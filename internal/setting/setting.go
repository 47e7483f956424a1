// Package setting changes one field of a configuration struct by its JSON
// name from text, as a command-line NAME=VALUE does: the packet rules'
// and the flow rules' thresholds (detect --rule).
package setting

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Set changes the field of the struct ptr points to whose JSON name is
// name, from text: a positive integer, a positive Go duration ("30s"), a
// positive number or a boolean, by the field's type. Returns an Invalid
// error naming the setting for an unknown name (listing the names there
// are) or a value of the wrong kind.
func Set(ptr any, name, value string) error {
	v := reflect.ValueOf(ptr).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if jsonName(f) != name {
			continue
		}
		var parsed any
		var err error
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			var d time.Duration
			if d, err = time.ParseDuration(value); err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			parsed = d
		case f.Type.Kind() == reflect.Int:
			var n int
			if n, err = strconv.Atoi(value); err == nil && n <= 0 {
				err = errors.New("must be positive")
			}
			parsed = n
		case f.Type.Kind() == reflect.Float64:
			var x float64
			if x, err = strconv.ParseFloat(value, 64); err == nil && !(x > 0 && x < math.Inf(1)) {
				err = errors.New("must be a positive number")
			}
			parsed = x
		case f.Type.Kind() == reflect.Bool:
			parsed, err = strconv.ParseBool(value)
		default:
			err = errors.New("cannot be set from text")
		}
		if err != nil {
			return apperr.InvalidField(name, "%q: %v", value, err)
		}
		v.Field(i).Set(reflect.ValueOf(parsed).Convert(f.Type))
		return nil
	}
	return apperr.InvalidField(name, "no such setting; the settings are %s", strings.Join(names(v.Type()), ", "))
}

// Names lists the JSON names of T's fields, the names Set takes.
func Names[T any]() []string { return names(reflect.TypeFor[T]()) }

func names(t reflect.Type) []string {
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		out = append(out, jsonName(t.Field(i)))
	}
	return out
}

func jsonName(f reflect.StructField) string {
	return strings.Split(f.Tag.Get("json"), ",")[0]
}
