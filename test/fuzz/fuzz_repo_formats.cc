// libFuzzer target: every parser of bytes that a repository, a state directory or a
// control socket hands livemount (someone else may have written them): the repository
// config, backup.json manifests, .fidx chunk lists, pack tables, index files, profiles,
// traces, control-socket requests and replies, leases, key slots, sealed objects and an
// object store's XML replies. The first byte picks the parser. Errors are fine;
// crashes, hangs and huge allocations are not.
#include <string>

#include <nlohmann/json.hpp>

#include "agent/control_protocol.h"
#include "profile/profile.h"
#include "store/backend/s3/s3_xml.h"
#include "store/chunk_index.h"
#include "store/crypto/key_file.h"
#include "store/crypto/repo_crypto.h"
#include "store/leases.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/repository.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 12) {
    case 0: (void)lm::DecodeRepoConfig(in, "config"); break;
    case 1: {
      auto m = lm::DecodeManifest(in, "backup.json");
      if (m.ok()) (void)lm::EncodeManifest(*m);  // what decodes must encode again
      break;
    }
    case 2: {
      auto f = lm::DecodeFidx(in, "0.fidx");
      if (f.ok() && !f->digests.empty()) (void)f->ChunkLen(f->digests.size() - 1);
      break;
    }
    case 3: (void)lm::DecodePackTable(in, "x.pack"); break;
    case 4: (void)lm::DecodeIndexFile(in, "x.idx"); break;
    case 5: {
      auto p = lm::DecodeProfile(in, "profile.json");
      if (p.ok()) (void)lm::EncodeProfile(*p);
      break;
    }
    case 6: {
      auto t = lm::DecodeTrace(in, "trace.json");
      if (t.ok()) (void)lm::EncodeTrace(*t);
      break;
    }
    case 7: {  // what a control socket carries, both ways; what decodes must encode again
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded()) break;
      namespace c = lm::control;
      if (auto r = c::DecodeRequest(j); r.ok()) (void)c::EncodeRequest(*r);
      if (auto r = c::DecodeReply<c::MountStats>(j); r.ok()) (void)c::Encode(*r);
      if (auto r = c::DecodeReply<c::PrestageReply>(j); r.ok()) (void)c::Encode(*r);
      if (auto r = c::DecodeReply<c::ExportInfo>(j); r.ok()) (void)c::Encode(*r);
      (void)c::DecodeReply<c::UnexportReply>(j);
      (void)c::DecodeReply<c::DiscardReply>(j);
      break;
    }
    case 8: {  // a lease another host wrote into the repository
      auto l = lm::DecodeLease(in, "lease.json");
      if (l.ok()) (void)lm::EncodeLease(*l);
      break;
    }
    case 9: {  // a key slot (decoded only: unwrapping spends scrypt's memory by design)
      auto k = lm::DecodeKeyFile(in, "00112233445566778899aabbccddeeff", "keys/x");
      if (k.ok()) (void)lm::EncodeKeyFile(*k);
      break;
    }
    case 10: {  // sealed objects and chunk payloads under some key: never open when forged
      static auto crypto = lm::RepoCrypto::FromMasterKey(lm::SecretBytes(std::string(32, 'k')),
                                                          "00112233445566778899aabbccddeeff");
      (void)(*crypto)->OpenObject("index/x.idx", in, "x");
      std::string out;
      (void)(*crypto)->OpenPayload(in.substr(0, std::min<size_t>(in.size(), 48)),
                                   in.size() > 48 ? in.substr(48) : std::string(), &out, "x");
      break;
    }
    case 11: {  // an object store's replies (XML from a server we do not trust)
      (void)lm::s3::ParseListPage(in);
      (void)lm::s3::ParseError(in);
      (void)lm::s3::ParseHttpDate(in);
      (void)lm::s3::ParseIsoTime(in);
      break;
    }
  }
  return 0;
}
