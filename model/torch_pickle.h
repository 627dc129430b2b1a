// Reading torch.save archives (zip format) with LibTorch's unpickler.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <ATen/core/ivalue.h>

namespace superpose {

// Rewrites a pickle program so that collections.OrderedDict objects load as
// plain dicts, using only opcodes LibTorch's unpickler knows: an
// `OrderedDict()` reduction becomes a dict holding the class and the
// arguments under two marker keys, and the BUILD that would set its
// attributes (state_dict()'s `_metadata`) becomes a third marker entry.
// load_torch_save removes the markers. (LibTorch 1.x's unpickler turns
// OrderedDicts into None, and every state_dict() is one.) SETITEM and
// APPEND become their MARK ... SETITEMS / APPENDS forms, the only ones that
// reader knows. FRAME opcodes, optional hints, are dropped; other opcodes
// are copied unchanged. Throws Error(where, ...) on a truncated
// program or an opcode outside pickle protocols 0-5.
std::string ordered_dicts_as_dicts(std::string_view pickle, const std::string& where);

// Loads a torch.save zip archive onto the CPU (tensors saved on a GPU
// included), through ordered_dicts_as_dicts and LibTorch's Unpickler.
// Throws Error naming the file when it is not such an archive or cannot be
// unpickled.
c10::IValue load_torch_save(const std::filesystem::path& path);

}  // namespace superpose
