-- wrk script: POST realistic WhatsApp-like messages over many distinct users; prints one JSON summary line.
local fragments = {"oi", "tudo bem?", "queria saber o preço", "vocês entregam hoje?", "obrigado!",
  "qual o horário de funcionamento?", "pode me mandar o cardápio", "👍", "ok", "e o frete?"}
local names = {"Ana", "João", "Maria", "Pedro", "Lucas", "Júlia"}
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local user = 5511900000000 + math.random(1, 100000)
  local body = string.format(
    '{"user":"%d","message":"%s","ttl":15,"pushName":"%s","instance":"bench","message_id":"wamid.%d.%d"}',
    user, fragments[math.random(#fragments)], names[math.random(#names)], math.random(1, 1e9), counter)
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"rps":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
