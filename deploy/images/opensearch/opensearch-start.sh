#!/bin/bash
# Start OpenSearch as the upstream image's entrypoint does: every environment variable whose
# name looks like a setting (lower case, with a dot: discovery.type, network.host) becomes
# -E<name>=<value>. DISABLE_SECURITY_PLUGIN and DISABLE_INSTALL_DEMO_CONFIG are accepted and
# have nothing to do: this distribution has no security plugin.
set -euo pipefail

opts=()
while IFS='=' read -r -d '' name value; do
    if [[ $name =~ ^[a-z0-9_]+\.[a-z0-9_.]+$ ]]; then
        opts+=("-E$name=$value")
    fi
done < <(env -0)
echo "starting OpenSearch with ${opts[*]:-no settings}" >&2
exec /usr/share/opensearch/bin/opensearch "${opts[@]}" "$@"
