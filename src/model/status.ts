/** Image statuses, as Image Factory named them. */
export const STATUSES = ['NEW', 'PENDING', 'BUILDING', 'COMPLETE', 'FAILED', 'CANCELLED', 'DELETING', 'DELETED', 'DELETEFAILED'] as const;
export type ImageStatus = (typeof STATUSES)[number];

/** Statuses after which nothing more happens to an image. */
export const FINAL_STATUSES: readonly ImageStatus[] = ['COMPLETE', 'FAILED', 'CANCELLED', 'DELETED', 'DELETEFAILED'];

export const isFinalStatus = (status: string): boolean => (FINAL_STATUSES as readonly string[]).includes(status);

/** Statuses of an image that cannot be built upon. */
export const UNUSABLE_STATUSES: readonly ImageStatus[] = ['FAILED', 'CANCELLED', 'DELETING', 'DELETED', 'DELETEFAILED'];
