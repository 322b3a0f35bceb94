import type { OsSpec } from '../tdl/index.js';

/** An OVF 1.0 descriptor for one VM with one disk, as vSphere, VirtualBox and ovftool read it. */

export interface OvfSpec {
  name: string;
  cpus: number;
  memoryMiB: number;
  disk: { file: string; fileSize: number; capacity: number };
  os: Pick<OsSpec, 'name' | 'arch'>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** CIM OperatingSystem ids: 96 Debian 64-bit, 95 Debian, 101 Other Linux 64-bit, 36 Linux. */
function osId(os: OvfSpec['os']): { id: number; vmw: string } {
  const x64 = os.arch === 'x86_64';
  if (os.name === 'Debian') return x64 ? { id: 96, vmw: 'debian12_64Guest' } : { id: 95, vmw: 'debian12Guest' };
  if (os.name === 'Ubuntu') return x64 ? { id: 94, vmw: 'ubuntu64Guest' } : { id: 93, vmw: 'ubuntuGuest' };
  return x64 ? { id: 101, vmw: 'otherLinux64Guest' } : { id: 36, vmw: 'otherLinuxGuest' };
}

export function ovfDescriptor(s: OvfSpec): string {
  const os = osId(s.os);
  const item = (fields: Record<string, string | number>) =>
    `      <Item>\n${Object.entries(fields)
      .map(([k, v]) => `        <rasd:${k}>${esc(String(v))}</rasd:${k}>`)
      .join('\n')}\n      </Item>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="imagefactory" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="${esc(s.disk.file)}" ovf:id="file1" ovf:size="${s.disk.fileSize}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="${s.disk.capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="${esc(s.name)}">
    <Info>A virtual machine</Info>
    <Name>${esc(s.name)}</Name>
    <OperatingSystemSection ovf:id="${os.id}" vmw:osType="${os.vmw}">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${esc(s.name)}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType>
      </System>
${item({ AllocationUnits: 'hertz * 10^6', Description: 'Number of Virtual CPUs', ElementName: `${s.cpus} virtual CPU(s)`, InstanceID: 1, ResourceType: 3, VirtualQuantity: s.cpus })}
${item({ AllocationUnits: 'byte * 2^20', Description: 'Memory Size', ElementName: `${s.memoryMiB}MB of memory`, InstanceID: 2, ResourceType: 4, VirtualQuantity: s.memoryMiB })}
${item({ Address: 0, Description: 'SCSI Controller', ElementName: 'SCSI Controller 0', InstanceID: 3, ResourceSubType: 'VirtualSCSI', ResourceType: 6 })}
${item({ AddressOnParent: 0, ElementName: 'Hard Disk 1', HostResource: 'ovf:/disk/vmdisk1', InstanceID: 4, Parent: 3, ResourceType: 17 })}
${item({ AddressOnParent: 7, AutomaticAllocation: 'true', Connection: 'VM Network', Description: 'VmxNet3 ethernet adapter on "VM Network"', ElementName: 'Network adapter 1', InstanceID: 5, ResourceSubType: 'VmxNet3', ResourceType: 10 })}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}
