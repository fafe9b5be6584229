#!/bin/sh
# The README's curl lines and the bad-input cases against $1 (host:port);
# prints the status codes (README.md).
U=$1; A='Authorization: Bearer s3cret'; J='Content-Type: application/json'
s() { curl -s -o /dev/null -w '%{http_code} ' "$@"; }
s "$U/api/todos?limit=10&offset=0"
s -H "$A" -H "$J" -d '{"title":"write docs"}' $U/api/todos
curl -s -D - -o /dev/null -H "$A" -H "$J" -d '{"title":"b"}' $U/api/todos | tr -d '\r' | grep -i '^location' | tr '\n' ' '
s -X PATCH -H "$A" -H "$J" -d '{"done":true}' $U/api/todos/1
s -X PUT -H "$A" -H "$J" -d '{"title":"B"}' $U/api/todos/2
s -X DELETE -H "$A" $U/api/todos/1
s -X DELETE -H "$A" $U/api/todos/1
s $U/api/todos/abc
s $U/api/todos?limit=ten
s -H "$A" -H "$J" -d '{"title":' $U/api/todos
s -H "$A" -H "$J" -d '{"title":"x","tilte":1}' $U/api/todos
s -H "$A" -d '{}' $U/api/todos
s -d '{}' $U/api/todos
s -H 'Authorization: Bearer no' -X DELETE $U/api/todos/2
s -X OPTIONS -H 'Origin: https://a.example' -H 'Access-Control-Request-Method: DELETE' $U/api/todos/2
s $U/
s $U/nope.html
echo; curl -s $U/api/todos; echo
