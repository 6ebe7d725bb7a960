#!/bin/sh
# An mxaudit exec plugin in plain sh: the request arrives on stdin as one line of JSON.
request=$(cat)
domain=$(printf '%s' "$request" | sed -n 's/.*"domain":"\([^"]*\)".*/\1/p')
case "$request" in
  *'"profile":"microsoft365"'*) printf '{"findings":[]}\n' ;;
  *) printf '{"findings":[{"code":"acme.not_on_m365","subject":"%s","vars":{"value":"none"}}]}\n' "$domain" ;;
esac
