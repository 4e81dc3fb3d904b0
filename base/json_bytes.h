// File names are bytes, JSON strings are UTF-8. A name that is valid UTF-8 is stored as
// itself ("path": "disk.vmdk"); any other is stored losslessly as hex beside a readable
// stand-in with U+FFFD for each undecodable byte ("path": "d\ufffd.vmdk",
// "path_hex": "64ff2e766d646b"). Readers prefer "<key>_hex" when present, so a name
// round-trips byte for byte through manifests, profiles and --json output.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "base/status.h"

namespace lm {

bool IsValidUtf8(std::string_view s);
// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string LossyUtf8(std::string_view s);
std::string HexEncode(std::string_view bytes);
bool HexDecode(std::string_view hex, std::string* out);

// Sets j[key] (and j[key + "_hex"] when `value` is not valid UTF-8).
void SetBytesField(nlohmann::json& j, const std::string& key, const std::string& value);
// Reads what SetBytesField wrote; Corrupt (naming `where` and the key) if absent or malformed.
Result<std::string> GetBytesField(const nlohmann::json& j, const std::string& key, const std::string& where);

}  // namespace lm
