#!/bin/sh
# packaging/help2man.sh - renders a program's --help text as a man page.
#
#   help2man.sh PROGRAM NAME VERSION "one-line description" > NAME.1
#
# The build runs it on dscoord, dsworker and dsctl (CMakeLists.txt), so the
# man pages say exactly what --help says and cannot drift from the flags
# tables. It understands the layout the three programs print:
#   usage: NAME ...            the synopsis (lines before it are skipped)
#   heading:                   an unindented line ending in ':' starts a section
#   text                       an unindented line is paragraph text
#     TAG   text               an indented line with a gap of 2+ spaces is a
#         more text            list entry; deeper lines continue it
#     anything else            other indented lines are shown verbatim
# POSIX sh and awk only (no help2man package needed).
set -eu

if [ $# -ne 4 ]; then
    echo "usage: help2man.sh PROGRAM NAME VERSION DESCRIPTION > NAME.1" >&2
    exit 2
fi
prog=$1
name=$2
version=$3
desc=$4

if ! help=$("$prog" --help); then
    echo "help2man.sh: '$prog --help' failed; is $prog built and runnable?" >&2
    exit 1
fi
if ! printf '%s\n' "$help" | grep -q '^usage: '; then
    echo "help2man.sh: '$prog --help' prints no 'usage: ' line; cannot render it" >&2
    exit 1
fi

printf '%s\n' "$help" | awk -v name="$name" -v version="$version" -v desc="$desc" '
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.\047]/)
        s = "\\&" s
    return s
}
function indent(s) { match(s, /^ */); return RLENGTH }
function close_verbatim() { if (mode == "verbatim") print ".fi"; mode = "" }
function describe() {
    if (described)
        return
    print ".SH DESCRIPTION"
    described = 1
}
BEGIN {
    printf ".TH %s 1 \"\" \"gossamer %s\" \"Gossamer manual\"\n", toupper(name), version
    print ".SH NAME"
    printf "%s \\- %s\n", name, esc(desc)
    state = "before"
    mode = ""
}
state == "before" {
    if ($0 ~ /^usage: /) {
        sub(/^usage: /, "")
        print ".SH SYNOPSIS"
        printf ".B %s\n", name
        rest = substr($0, length(name) + 2)
        if (rest != "")
            print esc(rest)
        state = "body"
        described = 0
    }
    next
}
/^[ \t]*$/ {
    close_verbatim()
    pending_pp = 1
    next
}
/^[^ ].*:$/ {
    close_verbatim()
    h = $0
    sub(/:$/, "", h)
    if (!described) { describe(); print esc(desc) "." }
    printf ".SH \"%s\"\n", toupper(esc(h))
    pending_pp = 0
    next
}
/^[^ ]/ {
    close_verbatim()
    describe()
    if (pending_pp) { print ".PP"; pending_pp = 0 }
    print esc($0)
    next
}
{
    n = indent($0)
    text = substr($0, n + 1)
    if (mode == "list" && n > entry_indent) {
        print esc(text)
        next
    }
    if (mode != "verbatim" && match(text, /[^ ]  +[^ ]/)) {
        close_verbatim()
        tag = substr(text, 1, RSTART)
        body = substr(text, RSTART + 1)
        sub(/^ +/, "", body)
        print ".TP"
        printf "\\fB%s\\fR\n", esc(tag)
        print esc(body)
        mode = "list"
        entry_indent = n
        pending_pp = 0
        next
    }
    if (mode != "verbatim") {
        if (pending_pp) { print ".PP"; pending_pp = 0 }
        print ".nf"
        mode = "verbatim"
    }
    print esc($0)
}
END {
    close_verbatim()
    print ".SH \"SEE ALSO\""
    n = split("dscoord dsworker dsctl", all, " ")
    sep = ""
    for (i = 1; i <= n; i++)
        if (all[i] != name) { printf "%s\\fB%s\\fR(1)", sep, all[i]; sep = ", " }
    print ""
    print ".PP"
    print "The production guide: /usr/share/doc/gossamer/production.md;"
    print "the example configuration files: /usr/share/gossamer/examples/."
}
'
