# Shared by node.sh and lan.sh (sourced, not run): how a provision script
# reports. Each problem is one line, "NODE: what is wrong; fix: what to do";
# finish ends the script with "baseline ok" (exit 0) or "baseline failed: N
# problem(s)" (exit 1).

problems=0

problem() {
    echo "$LAB_NODE: $1; fix: $2"
    problems=$((problems + 1))
}

finish() {
    if [ "$problems" -eq 0 ]; then
        echo "baseline ok"
        exit 0
    fi
    echo "baseline failed: $problems problem(s)"
    exit 1
}
