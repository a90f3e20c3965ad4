# Bash completion for attn, read from the command's own --help at completion time, so that it
# cannot drift from it: the commands (attn --help), a command's models (attn train --help,
# "models:") or subcommands (its usage lines: attn memory build) and the options of the command or model (every --option its --help names).
# Installed as share/bash-completion/completions/attn.

# _attn_list SECTIONS: "NAME<tab>SUMMARY" for every line "  NAME  SUMMARY" under the headings
# SECTIONS (a regular expression: "commands|utilities") of the help text on stdin. The man
# pages are made from the same lists (packaging/gen-man.sh).
_attn_list() {
    awk -v sec="^($1):$" '/^[a-z][a-z ]*:$/ { on = ($0 ~ sec); next }
                          /^$/ { on = 0 }
                          on && /^  [a-z]/ { n = $1; sub(/^ *[^ ]+ +/, ""); print n "\t" $0 }'
}

_attn() {
    local cur=${COMP_WORDS[COMP_CWORD]} attn=${COMP_WORDS[0]} words
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        if [[ $cur == -* ]]; then
            words="--help --version"
        else
            words="$("$attn" --help 2>/dev/null | _attn_list 'commands|utilities' | cut -f1) help"
        fi
    elif [ "${COMP_WORDS[1]}" = help ]; then
        [ "$COMP_CWORD" -eq 2 ] && words=$("$attn" --help 2>/dev/null | _attn_list 'commands|utilities' | cut -f1)
    else
        local help models subs
        help=$("$attn" "${COMP_WORDS[1]}" --help 2>/dev/null)
        models=$(_attn_list models <<<"$help" | cut -f1)
        # Subcommands: the models, and the words after "attn CMD" on the usage lines
        # (attn memory build, attn bench mha).
        subs="$models $(sed -nE "s/^(usage:)? +attn ${COMP_WORDS[1]} ([a-z][a-z0-9-]*).*/\2/p" <<<"$help")"
        if [ -n "${subs// /}" ] && [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
            words=$(tr " " "\n" <<<"$subs" | sort -u)
        elif [[ $cur == -* ]]; then
            # The model's own help, where the command has models (attn train seq2seq --help).
            [ -n "$models" ] && help=$("$attn" "${COMP_WORDS[1]}" "${COMP_WORDS[2]}" --help 2>/dev/null)
            words=$(grep -oE -- '(^|[ ,[])--?[a-zA-Z][a-zA-Z0-9-]*' <<<"$help" | grep -oE -- '--?[a-zA-Z].*' | sort -u)
        else
            # Arguments are files (.npy, safetensors, data sets, model folders) or values.
            compopt -o default 2>/dev/null
            return 0
        fi
    fi
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}
complete -F _attn attn
