-- Give every record the ECS fields of the stockstream log schema
-- (index-template.json, stockstream/logs.py), also for lines that were not JSON.
--
-- 1. Dotted top-level keys of the ECS lines ("log.level", "ecs.version") become
--    objects (log = {level = ...}), merged with the objects the line already has:
--    the es output's Replace_Dots (needed for the dotted Kubernetes label keys)
--    would otherwise turn "log.level" into "log_level".
-- 2. Lines that were not JSON (native Bytewax/Redpanda output, tracebacks): the
--    raw line becomes `message`, `service.name` falls back to the pod's
--    app.kubernetes.io/name label (or the container name), `log.level` to
--    "unknown" and `log.logger` to the stream (stdout/stderr).

local function expand_dotted_keys(record)
    local dotted = {}
    for key, _ in pairs(record) do
        if type(key) == "string" and string.find(key, ".", 1, true) then
            table.insert(dotted, key)
        end
    end
    for _, key in ipairs(dotted) do
        local value = record[key]
        record[key] = nil
        local node = record
        local parts = {}
        for part in string.gmatch(key, "[^.]+") do
            table.insert(parts, part)
        end
        for i = 1, #parts - 1 do
            if type(node[parts[i]]) ~= "table" then
                node[parts[i]] = {}
            end
            node = node[parts[i]]
        end
        node[parts[#parts]] = value
    end
end

local function child(record, key)
    if type(record[key]) ~= "table" then
        record[key] = {}
    end
    return record[key]
end

function normalise(tag, timestamp, record)
    expand_dotted_keys(record)
    if record["message"] == nil and record["log"] ~= nil and type(record["log"]) ~= "table" then
        record["message"] = record["log"]
        record["log"] = nil
    end
    local service = child(record, "service")
    if service["name"] == nil then
        local k8s = record["kubernetes"]
        local name = nil
        if k8s ~= nil then
            local labels = k8s["labels"]
            if labels ~= nil then
                name = labels["app.kubernetes.io/name"]
            end
            if name == nil then
                name = k8s["container_name"]
            end
        end
        service["name"] = name or "unknown"
    end
    local log = child(record, "log")
    if log["level"] == nil then
        log["level"] = "unknown"
    end
    if log["logger"] == nil then
        log["logger"] = record["stream"] or "stdout"
    end
    -- 2 = record modified, keep the original timestamp
    return 2, timestamp, record
end
