/** A file straight to S3 with the presigned POST the API gave (fields first, the file last), with
 * progress. XMLHttpRequest because fetch reports no upload progress. */
export function uploadToS3(
  target: { url: string; fields: Record<string, unknown> },
  file: File,
  onProgress: (percent: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(target.fields)) form.append(name, String(value));
    form.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", target.url);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    };
    request.onload = () =>
      request.status >= 200 && request.status < 300
        ? resolve()
        : reject(new Error(`The upload was refused (${request.status}).`));
    request.onerror = () => reject(new Error("The upload failed: check your connection and try again."));
    request.send(form);
  });
}
