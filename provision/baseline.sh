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

# note: write down a change the script made, once, so that restore.sh can
# undo it on a machine of the user's (LAB_MACHINE=own, provider existing). The
# lab's own VMs go whole: nothing is noted there.
LAB_STATE_DIR=${LAB_STATE_DIR:-/var/lib/ipvlan-lab}
note() {
    [ "$LAB_MACHINE" = own ] || return 0
    mkdir -p "$LAB_STATE_DIR"
    grep -qxF -- "$*" "$LAB_STATE_DIR/changes" 2>/dev/null \
        || echo "$*" >>"$LAB_STATE_DIR/changes"
}

# LAB_MACHINE: vm (the lab's own, the default) or own (the user's machine,
# provider existing), where the scripts never take away what they did not add.
: "${LAB_MACHINE:=vm}"
case "$LAB_MACHINE" in
    vm | own) ;;
    *)
        echo "$LAB_NODE: LAB_MACHINE=$LAB_MACHINE is not vm or own; fix: set it" \
            "to vm or own"
        exit 2
        ;;
esac
