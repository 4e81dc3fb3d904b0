// libFuzzer target: every parser of bytes that a repository, a state directory or a
// control socket hands livemount (someone else may have written them): the repository
// config, backup.json manifests, .fidx chunk lists, pack tables, index files, profiles,
// traces and control-socket replies. The first byte picks the parser. Errors are fine;
// crashes, hangs and huge allocations are not.
#include <string>

#include "agent/control.h"
#include "profile/profile.h"
#include "store/chunk_index.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/repository.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
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
    case 7: {
      auto r = lm::DecodeControlReply(in);
      if (r.ok()) {
        (void)lm::CheckFields(*r, {{"cache.hits", lm::JsonKind::kUInt}, {"export", lm::JsonKind::kOptionalObject},
                                   {"overlays", lm::JsonKind::kArray}, {"backup", lm::JsonKind::kString}},
                              "fuzz");
      }
      break;
    }
  }
  return 0;
}
