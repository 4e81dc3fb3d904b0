// `run --hypervisor esxi`: livemount does not drive ESXi itself (no vSphere API here); it
// prints the commands an administrator runs on the ESXi host against the mount's NFS
// export (`livemount export`). A KVM copy registers its generated .vmx, whose disks are
// VMDK descriptors over the raw views of its qcow2 images (guest/copy_views.h).
#include <fmt/format.h>

#include "agent/launch.h"

namespace lm {

std::string EsxiRecipe(const std::string& vm_name, const std::string& vmx_in_copy, const std::string& nfs_host,
                       const std::string& nfs_path, const std::string& datastore) {
  std::string vmx = fmt::format("/vmfs/volumes/{}/{}", datastore, vmx_in_copy);
  return fmt::format(
      "# On the ESXi host (ssh root@esxi), with the mount exported to it (livemount export MOUNTPOINT --client ESXI):\n"
      "esxcli storage nfs add --host={host} --share={share} --volume-name={ds}\n"
      "# A port group with no uplink keeps the recovered VM off the production network:\n"
      "esxcli network vswitch standard add --vswitch-name=livemount-isolated\n"
      "esxcli network vswitch standard portgroup add --vswitch-name=livemount-isolated --portgroup-name=livemount-isolated\n"
      "vmid=$(vim-cmd solo/registervm '{vmx}' '{name}')\n"
      "# Answer \"I copied it\" when asked, so the VM gets a new UUID and new MAC addresses:\n"
      "vim-cmd vmsvc/power.on \"$vmid\"\n"
      "# Afterwards: vim-cmd vmsvc/power.off \"$vmid\"; vim-cmd vmsvc/unregister \"$vmid\"\n",
      fmt::arg("host", nfs_host), fmt::arg("share", nfs_path), fmt::arg("ds", datastore), fmt::arg("vmx", vmx),
      fmt::arg("name", vm_name));
}

}  // namespace lm
