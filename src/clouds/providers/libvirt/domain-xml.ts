// The persistent domain that the libvirt push defines (never starts) for an uploaded volume.
import type { LibvirtAccess } from './access.js';

export interface DomainFacts {
  name: string;
  imageId: string;
  arch: string;
  pool: string;
  volume: string;
  format: 'qcow2' | 'raw';
}

const x = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

export const METADATA_NS = 'https://github.com/imagefactory/imagefactory/provider-image';

/** A libvirt domain name from the template's name and the image id (unique, and says what it is). */
export function domainName(templateName: string, imageId: string): string {
  const base = templateName.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 48) || 'image';
  return `${base}-${imageId.slice(0, 8)}`;
}

export function domainXml(facts: DomainFacts, access: LibvirtAccess): string {
  const machine = facts.arch === 'x86_64' || facts.arch === 'i386' || facts.arch === 'i686' ? " machine='pc'" : facts.arch === 'aarch64' ? " machine='virt'" : '';
  const lines = [
    `<domain type='${access.domainType}'>`,
    `  <name>${x(facts.name)}</name>`,
    `  <metadata><imagefactory:image xmlns:imagefactory='${METADATA_NS}' id='${x(facts.imageId)}'/></metadata>`,
    `  <memory unit='MiB'>${access.memoryMiB}</memory>`,
    `  <vcpu>${access.vcpus}</vcpu>`,
    `  <os${access.firmware === 'uefi' ? " firmware='efi'" : ''}>`,
    `    <type arch='${x(facts.arch === 'i386' ? 'i686' : facts.arch)}'${machine}>hvm</type>`,
    "    <boot dev='hd'/>",
    '  </os>',
    '  <features><acpi/><apic/></features>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    "    <disk type='volume' device='disk'>",
    `      <driver name='qemu' type='${facts.format}'/>`,
    `      <source pool='${x(facts.pool)}' volume='${x(facts.volume)}'/>`,
    "      <target dev='vda' bus='virtio'/>",
    '    </disk>',
    ...(access.network ? [`    <interface type='network'><source network='${x(access.network)}'/><model type='virtio'/></interface>`] : []),
    "    <serial type='pty'/>",
    "    <console type='pty'/>",
    "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
    '  </devices>',
    '</domain>',
  ];
  return lines.join('\n') + '\n';
}
