extension SidecarConfiguration {
    /// The repository's `sidecar.conf`, built in: the settings used when no file is found.
    ///
    /// A test keeps this text identical to the file.
    public static let embeddedDefaultsTOML = #"""
# llm-sidecar configuration (TOML). Every key is shown with its default.
# The sidecar reads --config PATH, else ./sidecar.conf, else /etc/llm-sidecar/sidecar.conf;
# with none of them it runs on these same settings, built into the binary.
# Secrets never go in this file: api_key_env names the environment variable holding a key.

[server]
listen = "127.0.0.1:8088"              # HOST:PORT; keep it on loopback unless you mean otherwise
max_body_bytes = 16777216              # larger request bodies get 413
max_response_bytes = 67108864          # largest non-streamed upstream answer read to price it

[timeouts]
connect_ms = 2000                      # opening a connection to an upstream
request_ms = 600000                    # one whole request, streaming included

# Upstreams: any OpenAI-compatible base URL (Ollama's /v1, OpenAI, vLLM, llama.cpp's server).
[[upstreams]]
name = "ollama"
base_url = "http://127.0.0.1:11434/v1"
api_key_env = ""                       # "" = send no key
pass_client_authorization = false      # true = forward the client's own Authorization header

[[upstreams]]
name = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
pass_client_authorization = false

# Models: the id sent upstream (and reported in X-Model-Used), who serves it, its price.
[[models]]
name = "llama3.2:3b"
upstream = "ollama"
input_usd_per_mtok = 0.0
output_usd_per_mtok = 0.0

[[models]]
name = "gpt-4o"
upstream = "openai"
input_usd_per_mtok = 2.50
output_usd_per_mtok = 10.00

[[models]]
name = "text-embedding-3-small"
upstream = "openai"
input_usd_per_mtok = 0.02
output_usd_per_mtok = 0.0

[routing]
# Ordered tiers: the first whose max_score is above the request's complexity score (0..1) wins.
tiers = [ { max_score = 0.40, model = "llama3.2:3b" },
          { max_score = 1.01, model = "gpt-4o" } ]
mode = "all"                           # "all": route every request; "auto_only": only model "auto"
auto_alias = "auto"                    # this model name always routes
pin_header = "X-Sidecar-Pin"           # send "X-Sidecar-Pin: 1" to keep the requested model
pin_prefix = "pin/"                    # or ask for "pin/gpt-4o" to get exactly gpt-4o
default_upstream = ""                  # other /v1/* paths and unknown pinned models; "" = first upstream
ollama_upstream = "ollama"             # receives Ollama's native /api/*; "" = disabled

[cache]
backend = "memory"                     # "memory" or "redis"
redis_url = "redis://127.0.0.1:6379/0"
ttl_seconds = 86400
"""#

    /// The built-in configuration.
    public static func embeddedDefaults() throws(ConfigurationError) -> SidecarConfiguration {
        try SidecarConfiguration(toml: Self.embeddedDefaultsTOML, file: "<embedded defaults>")
    }
}
