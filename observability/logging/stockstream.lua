-- Give every record the fields of the stockstream log schema
-- (index-template.json), also for lines that were not JSON: the raw line
-- becomes `message`, `service` falls back to the pod's app.kubernetes.io/name
-- label (or the container name) and `level` to UNKNOWN.
function normalise(tag, timestamp, record)
    if record["message"] == nil and record["log"] ~= nil then
        record["message"] = record["log"]
        record["log"] = nil
    end
    if record["service"] == nil then
        local k8s = record["kubernetes"]
        local service = nil
        if k8s ~= nil then
            local labels = k8s["labels"]
            if labels ~= nil then
                service = labels["app.kubernetes.io/name"]
            end
            if service == nil then
                service = k8s["container_name"]
            end
        end
        record["service"] = service or "unknown"
    end
    if record["level"] == nil then
        record["level"] = "UNKNOWN"
    end
    if record["logger"] == nil then
        record["logger"] = record["stream"] or "stdout"
    end
    -- 2 = record modified, keep the original timestamp
    return 2, timestamp, record
end
