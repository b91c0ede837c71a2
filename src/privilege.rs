//! TEMPORARY stub.
pub fn drop_privileges(_uid: u32, _gid: u32) -> Result<(), String> {
    Err("stub".into())
}
pub struct PidFile;
impl PidFile {
    pub fn create(_p: &std::path::Path) -> Result<PidFile, String> {
        Ok(PidFile)
    }
    pub fn remove(self) {}
}
